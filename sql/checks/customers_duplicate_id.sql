-- customers_duplicate_id: Customer ids held by more than one customer row, and rows
--   without a customer id. failing_rows counts the rows involved; each sample row is one
--   id (NULL for the rows without one) with its number of rows.
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   customer_id id: the repeated customer id (NULL: rows without an id)
--   customer_rows int: how many rows hold it
with repeated as (
    select
        c.customer_id as customer_id,
        count(*) as customer_rows
    from mapped_customers as c
    group by c.customer_id
    having count(*) > 1 or c.customer_id is null
),

ranked as (
    select
        sum(customer_rows) over () as failing_rows,
        row_number() over (order by customer_id) as sample_rank,
        customer_id,
        customer_rows
    from repeated
)

select failing_rows, customer_id, customer_rows
from ranked
where sample_rank <= :sample_rows
order by sample_rank
