-- orders_duplicate_id: Order ids held by more than one row, and rows without an order id.
--   failing_rows counts the rows involved; each sample row is one id (NULL for the rows
--   without one) with its number of rows.
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   order_id id: the repeated order id (NULL: rows without an id)
--   order_rows int: how many rows hold it
-- notes: DuckDB variant: the same rows, found by sorting the ids and comparing each with
--   its neighbours instead of a hash table of every id (several times faster when the rows
--   are stored roughly in id order, as inserted orders are; never slower).
with ordered as (
    select
        o.order_id as order_id,
        lag(o.order_id) over (order by o.order_id) as previous_id,
        lead(o.order_id) over (order by o.order_id) as next_id
    from mapped_orders as o
    where o.order_id is not null
),

repeated as (
    -- equal ids sort next to each other: a repeated id's rows all equal a neighbour
    select
        order_id,
        count(*) as order_rows
    from ordered
    where order_id = previous_id
       or order_id = next_id
    group by order_id
    union all
    select
        null as order_id,
        count(*) as order_rows
    from mapped_orders as o
    where o.order_id is null
    having count(*) > 0
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
