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
-- notes: DuckDB runs the .duckdb.sql variant: the same rows, found with a hash join.
with failing as (
    select
        r.order_id as order_id,
        r.customer_id as customer_id,
        r.order_date as order_date,
        r.amount as amount,
        r.status as status
    from mapped_orders as r
    where r.status = 'refunded'
      and r.customer_id is not null
      and not exists (
          select 1
          from mapped_orders as p
          where p.customer_id = r.customer_id
            and p.status = 'paid'
            and p.order_date <= r.order_date
      )
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
