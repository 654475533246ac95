-- orders_unregistered_customer: Paid or refunded rows dated on or before :as_of whose
--   customer exists but is not in the register of :as_of (signed up after it, or no
--   signup date).
-- params:
--   as_of date: the business date T (inclusive)
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   order_id id: the order's key
--   customer_id id: the customer it names
--   order_date date: its date
--   amount money: its amount
--   status text: its status
-- notes: The same signup_date rule as customers.sql's WHERE.
with unregistered as (
    select c.customer_id as customer_id
    from mapped_customers as c
    where c.customer_id is not null
    group by c.customer_id
    having max(case when c.signup_date <= :as_of then 1 else 0 end) = 0
),

failing as (
    select
        o.order_id as order_id,
        o.customer_id as customer_id,
        o.order_date as order_date,
        o.amount as amount,
        o.status as status
    from mapped_orders as o
    inner join unregistered as u on u.customer_id = o.customer_id
    where o.status in ('paid', 'refunded')
      and o.order_date <= :as_of
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
