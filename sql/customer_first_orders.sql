-- customer_first_orders: First and second paid order dates per customer, up to :as_of.
--   One row per customer with a paid order on or before :as_of. The second order is
--   the next paid order after the first in (order_date, order_id) order, so two paid
--   orders on the same day make the second order date equal the first. Refunded and
--   cancelled rows are not orders.
-- params:
--   as_of date: the business date T (inclusive)
-- columns:
--   customer_id id: the customer's key
--   first_order_date date: first paid order
--   second_order_date date: second paid order (NULL when the customer has only one)
-- adapt: Map your orders onto (order_id, customer_id, order_date, status) in the
--   paid_orders CTE; keep the aliases. Needs window functions (SQLite 3.25+,
--   MariaDB 10.2+, MySQL 8+, every PostgreSQL and DuckDB).
with paid_orders as (
    select
        o.customer_id as customer_id,
        o.order_date as order_date,
        row_number() over (
            partition by o.customer_id order by o.order_date, o.order_id
        ) as order_rank
    from orders as o
    where o.status = 'paid'
      and o.order_date <= :as_of
),

final as (
    select
        customer_id,
        min(order_date) as first_order_date,
        max(case when order_rank = 2 then order_date end) as second_order_date
    from paid_orders
    where order_rank <= 2
    group by customer_id
)

select * from final
order by customer_id
