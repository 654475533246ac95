-- dates_stored_as_text: Dates and timestamps that SQLite holds in a form its text
--   comparison cannot order against the run's dates: not 'YYYY-MM-DD' in a date column
--   (orders.order_date, customers.signup_date, customers.birthday), not 'YYYY-MM-DD
--   HH:MM:SS.ffffff' in a timestamp column (leads.created_at, tickets.opened_at,
--   campaigns.started_at, touches.sent_at), or a number. Typed databases (DuckDB,
--   PostgreSQL, MySQL/MariaDB) store a date as a date, so only SQLite's variant of this
--   check (dates_stored_as_text.sqlite.sql) has anything to find; here it finds nothing.
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   table_name text: the table
--   column_name text: the date column
--   row_id id: the row's key
--   stored text: the value as stored
select
    0 as failing_rows,
    'orders' as table_name,
    'order_date' as column_name,
    o.order_id as row_id,
    'YYYY-MM-DD' as stored
from mapped_orders as o
where 1 = 0
  and o.order_id is not null
  and :sample_rows > 0
