-- orders_duplicate_id: Order ids held by more than one row, and rows without an order id.
--   failing_rows counts the rows involved; each sample row is one id (NULL for the rows
--   without one) with its number of rows.
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   order_id id: the repeated order id (NULL: rows without an id)
--   order_rows int: how many rows hold it
with repeated as (
    select
        o.order_id as order_id,
        count(*) as order_rows
    from mapped_orders as o
    group by o.order_id
    having count(*) > 1 or o.order_id is null
),

ranked as (
    select
        sum(order_rows) over () as failing_rows,
        row_number() over (order by order_id) as sample_rank,
        order_id,
        order_rows
    from repeated
)

select failing_rows, order_id, order_rows
from ranked
where sample_rank <= :sample_rows
order by sample_rank
