-- orders_row_checks: Not a check: the seven checks that look at one order row at a time
--   (orders_bad_amount, orders_future_dated, orders_missing_customer, orders_missing_date,
--   orders_unknown_customer, orders_unknown_status, orders_unregistered_customer) in
--   three passes over the orders instead of seven: one for the five that need only the
--   row, the anti-join of orders_unknown_customer, the join of the few unregistered
--   customers (one join of every row for all seven made PostgreSQL drop its parallel
--   scans: slower than the seven files run three at a time). quality.py runs it in
--   their place and reports each check on its own, with its failing rows and samples,
--   exactly as its file gives them.
-- params:
--   as_of date: the business date T (inclusive)
--   future_after date: the last plausible order date
--   sample_rows int: how many failing rows to return as examples, per check
-- columns:
--   check_name text: the check (the file in sql/checks/ whose rows these are)
--   failing_rows int: how many rows fail that check (the same on each of its rows)
--   order_id id: the order's key
--   customer_id id: the customer it names
--   order_date date: its date
--   amount money: its amount
--   status text: its status
-- notes: The conditions are those of the seven check files, which stay the checks'
--   definitions (and the README's table): edit both together; tests/test_fast_paths.py
--   checks that this query gives each file's rows.
with unregistered as (
    select c.customer_id as customer_id
    from mapped_customers as c
    where c.customer_id is not null
    group by c.customer_id
    having max(case when c.signup_date <= :as_of then 1 else 0 end) = 0
),

row_failures as (
    -- one pass for the five checks that need nothing but the row; only the rows that
    -- fail one of them leave it
    select
        o.order_id as order_id,
        o.customer_id as customer_id,
        o.order_date as order_date,
        o.amount as amount,
        o.status as status,
        case when o.status in ('paid', 'refunded') then 1 else 0 end as is_money,
        case when (o.status is null or o.status not in ('paid', 'refunded', 'cancelled')) then 1 else 0 end as is_unknown_status
    from mapped_orders as o
    where (o.status is null or o.status not in ('paid', 'refunded', 'cancelled'))
       or o.order_date > :future_after
       or (
           o.status in ('paid', 'refunded')
           and (
               o.amount is null
               or o.amount <= 0
               or o.order_date is null
               or o.customer_id is null
           )
       )
),

failing as (
    select
        'orders_bad_amount' as check_name,
        order_id,
        customer_id,
        order_date,
        amount,
        status
    from row_failures
    where is_money = 1 and (amount is null or amount <= 0)

    union all

    select
        'orders_future_dated' as check_name,
        order_id,
        customer_id,
        order_date,
        amount,
        status
    from row_failures
    where order_date > :future_after

    union all

    select
        'orders_missing_customer' as check_name,
        order_id,
        customer_id,
        order_date,
        amount,
        status
    from row_failures
    where is_money = 1 and customer_id is null

    union all

    select
        'orders_missing_date' as check_name,
        order_id,
        customer_id,
        order_date,
        amount,
        status
    from row_failures
    where is_money = 1 and order_date is null

    union all

    select
        'orders_unknown_status' as check_name,
        order_id,
        customer_id,
        order_date,
        amount,
        status
    from row_failures
    where is_unknown_status = 1

    union all

    select
        'orders_unknown_customer' as check_name,
        o.order_id as order_id,
        o.customer_id as customer_id,
        o.order_date as order_date,
        o.amount as amount,
        o.status as status
    from mapped_orders as o
    where o.status in ('paid', 'refunded')
      and o.customer_id is not null
      and not exists (
          select 1 from mapped_customers as c where c.customer_id = o.customer_id
      )

    union all

    select
        'orders_unregistered_customer' as check_name,
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
        check_name,
        count(*) over (partition by check_name) as failing_rows,
        row_number() over (
            partition by check_name order by order_id, order_date, amount, status
        ) as sample_rank,
        order_id,
        customer_id,
        order_date,
        amount,
        status
    from failing
)

select check_name, failing_rows, order_id, customer_id, order_date, amount, status
from ranked
where sample_rank <= :sample_rows
order by check_name, sample_rank
