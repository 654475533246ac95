-- orders_future_dated: Rows of any status dated after :future_after, the later of
--   T + 1 day and the day of the run: dates that cannot have happened yet.
-- params:
--   future_after date: the last plausible order date
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   order_id id: the order's key
--   customer_id id: the customer it names
--   order_date date: its date
--   amount money: its amount
--   status text: its status
with failing as (
    select
        o.order_id as order_id,
        o.customer_id as customer_id,
        o.order_date as order_date,
        o.amount as amount,
        o.status as status
    from mapped_orders as o
    where o.order_date > :future_after
),

ranked as (
    select
        count(*) over () as failing_rows,
        row_number() over (order by order_id, order_date, amount, status) as sample_rank,
        order_id,
        customer_id,
        order_date,
        amount,
        status
    from failing
)

select failing_rows, order_id, customer_id, order_date, amount, status
from ranked
where sample_rank <= :sample_rows
order by sample_rank
