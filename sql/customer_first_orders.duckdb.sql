-- customer_first_orders: DuckDB variant of customer_first_orders.sql. DuckDB hashes
--   rather than reading an index in order, so ranking or counting orders per (customer,
--   day) costs it a sort or a hash table of 9 million groups at 10M orders; its
--   aggregate min(order_date, 2) keeps the two earliest dates of each customer in one
--   hash pass instead (about twice as fast as ranking). Same rule: the second order is
--   the next paid order after the first in (order_date, order_id) order, so two paid
--   orders on the first day make the second order date equal the first (min(x, 2)
--   keeps equal values).
-- params:
--   as_of date: the business date T (inclusive)
-- columns:
--   customer_id id: the customer's key
--   first_order_date date: first paid order
--   second_order_date date: second paid order (NULL when the customer has only one)
-- notes: Needs DuckDB 1.1 or later (min with a count).
with first_two as (
    select
        o.customer_id as customer_id,
        min(o.order_date, 2) as order_dates
    from mapped_orders as o
    where o.status = 'paid'
      and o.order_date <= :as_of
    group by o.customer_id
),

final as (
    select
        customer_id,
        order_dates[1] as first_order_date,
        -- a list index past the end is NULL: a customer with one paid order
        order_dates[2] as second_order_date
    from first_two
)

select * from final
order by customer_id
