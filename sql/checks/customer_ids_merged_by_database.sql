-- customer_ids_merged_by_database: Customer ids (in customers or orders) that the
--   database itself compares as equal although they differ, by letter case or trailing
--   spaces (a case-insensitive or space-padding collation), so its joins and GROUP BYs
--   would merge customers that crm-batch keeps apart. One row per merged key, with the
--   lowest and highest of its spellings (as bytes).
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   customer_id id: one spelling of the key
--   other_id id: another spelling the database treats as the same key
-- notes: PostgreSQL, SQLite and DuckDB compare text exactly by default, so this base query
--   returns nothing. If your id columns use a case-insensitive collation there (COLLATE
--   NOCASE, a nondeterministic ICU collation), write a variant like the .mysql.sql one.
with failing as (
    select
        c.customer_id as customer_id,
        c.customer_id as other_id
    from mapped_customers as c
    where 1 = 0
),

ranked as (
    select
        count(*) over () as failing_rows,
        row_number() over (order by customer_id) as sample_rank,
        customer_id,
        other_id
    from failing
)

select failing_rows, customer_id, other_id
from ranked
where sample_rank <= :sample_rows
order by sample_rank
