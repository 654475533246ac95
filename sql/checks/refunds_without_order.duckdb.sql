-- refunds_without_order: Refunded rows whose customer has no paid order dated on or
--   before the refund (a refund without an original order). Rows without a customer
--   are left to orders_missing_customer.
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   order_id id: the order's key
--   customer_id id: the customer it names
--   order_date date: its date
--   amount money: its amount
--   status text: its status
-- notes: DuckDB variant (faster there than NOT EXISTS): each refund against its customer's
--   first paid order.
with refunds as (
    select
        r.order_id as order_id,
        r.customer_id as customer_id,
        r.order_date as order_date,
        r.amount as amount,
        r.status as status
    from mapped_orders as r
    where r.status = 'refunded'
      and r.customer_id is not null
),

first_paid as (
    select
        p.customer_id as customer_id,
        min(p.order_date) as first_paid_date
    from mapped_orders as p
    where p.status = 'paid'
      and p.customer_id in (select rf.customer_id from refunds as rf)
    group by p.customer_id
),

failing as (
    select
        r.order_id as order_id,
        r.customer_id as customer_id,
        r.order_date as order_date,
        r.amount as amount,
        r.status as status
    from refunds as r
    left join first_paid as f on f.customer_id = r.customer_id
    where f.first_paid_date is null
       or r.order_date is null  -- as NOT EXISTS: an undated refund has no order before it
       or f.first_paid_date > r.order_date
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
