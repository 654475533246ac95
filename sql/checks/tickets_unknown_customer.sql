-- tickets_unknown_customer: Service tickets whose customer_id is NULL or in no customers
--   row.
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   ticket_id id: the ticket's key
--   customer_id id: the customer it names
--   opened_at timestamp: when it was opened
--   kind text: 'complaint' or 'inquiry'
with failing as (
    select
        t.ticket_id as ticket_id,
        t.customer_id as customer_id,
        t.opened_at as opened_at,
        t.kind as kind
    from mapped_tickets as t
    where t.customer_id is null
    union all
    select
        t.ticket_id as ticket_id,
        t.customer_id as customer_id,
        t.opened_at as opened_at,
        t.kind as kind
    from mapped_tickets as t
    where t.customer_id is not null
      and not exists (
          select 1 from mapped_customers as c where c.customer_id = t.customer_id
      )
),

ranked as (
    select
        count(*) over () as failing_rows,
        row_number() over (order by ticket_id, opened_at) as sample_rank,
        ticket_id,
        customer_id,
        opened_at,
        kind
    from failing
)

select failing_rows, ticket_id, customer_id, opened_at, kind
from ranked
where sample_rank <= :sample_rows
order by sample_rank
