-- dates_stored_as_text: Dates and timestamps that SQLite holds in a form its text
--   comparison cannot order against the run's dates (SQLite keeps dates as text or
--   numbers and compares text byte by byte: '2011-12-09 00:00:00', what
--   pandas.DataFrame.to_sql writes into a date column, sorts after the run's
--   '2011-12-09', so that day's orders would fall out of every window ending on it).
--   Date columns must hold 'YYYY-MM-DD' and timestamp columns 'YYYY-MM-DD HH:MM:SS.ffffff',
--   the shapes SQLAlchemy writes and crm-batch binds ('2011-12-09 00:00:00' in a
--   timestamp column sorts before the run's '2011-12-09 00:00:00.000000').
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   table_name text: the table
--   column_name text: the date column
--   row_id id: the row's key
--   stored text: the value as stored
-- notes: The mapping files see the values as stored: a mapping that converts them
--   (date(order_date)) makes this check pass.
with failing as (
    select 'orders' as table_name, 'order_date' as column_name,
           o.order_id as row_id, cast(o.order_date as text) as stored
    from mapped_orders as o
    where o.order_date is not null
      and (typeof(o.order_date) <> 'text'
           or o.order_date not glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]')
    union all
    select 'customers', 'signup_date', c.customer_id, cast(c.signup_date as text)
    from mapped_customers as c
    where c.signup_date is not null
      and (typeof(c.signup_date) <> 'text'
           or c.signup_date not glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]')
    union all
    select 'customers', 'birthday', c.customer_id, cast(c.birthday as text)
    from mapped_customers as c
    where c.birthday is not null
      and (typeof(c.birthday) <> 'text'
           or c.birthday not glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]')
    union all
    select 'leads', 'created_at', l.lead_id, cast(l.created_at as text)
    from mapped_leads as l
    where l.created_at is not null
      and (typeof(l.created_at) <> 'text'
           or l.created_at not glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]')
    union all
    select 'tickets', 'opened_at', t.ticket_id, cast(t.opened_at as text)
    from mapped_tickets as t
    where t.opened_at is not null
      and (typeof(t.opened_at) <> 'text'
           or t.opened_at not glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]')
    union all
    select 'campaigns', 'started_at', m.campaign_id, cast(m.started_at as text)
    from mapped_campaigns as m
    where m.started_at is not null
      and (typeof(m.started_at) <> 'text'
           or m.started_at not glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]')
    union all
    select 'touches', 'sent_at', h.touch_id, cast(h.sent_at as text)
    from mapped_touches as h
    where h.sent_at is not null
      and (typeof(h.sent_at) <> 'text'
           or h.sent_at not glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]')
),

ranked as (
    select
        count(*) over () as failing_rows,
        row_number() over (order by table_name, column_name, row_id) as sample_rank,
        table_name,
        column_name,
        row_id,
        stored
    from failing
)

select failing_rows, table_name, column_name, row_id, stored
from ranked
where sample_rank <= :sample_rows
order by sample_rank
