-- customer_first_orders: First and second paid order dates per customer, up to :as_of.
--   One row per customer with a paid order on or before :as_of. The second order is
--   the next paid order after the first in (order_date, order_id) order, so two paid
--   orders on the same day make the second order date equal the first. Refunded and
--   cancelled rows are not orders. Only dates matter, so orders are first counted per
--   (customer, day) and the days ranked: reading (customer_id, order_date) alone lets a
--   database answer from an index on them (PostgreSQL: an index-only scan, no sort).
-- params:
--   as_of date: the business date T (inclusive)
-- columns:
--   customer_id id: the customer's key
--   first_order_date date: first paid order
--   second_order_date date: second paid order (NULL when the customer has only one)
-- notes: Needs window functions (SQLite 3.25+, MariaDB 10.2+, MySQL 8+, every PostgreSQL
--   and DuckDB).
with paid_days as (
    select
        o.customer_id as customer_id,
        o.order_date as order_date,
        count(*) as day_orders
    from mapped_orders as o
    where o.status = 'paid'
      and o.order_date <= :as_of
    group by o.customer_id, o.order_date
),

ranked_days as (
    select
        customer_id,
        order_date,
        day_orders,
        row_number() over (partition by customer_id order by order_date) as day_rank
    from paid_days
),

final as (
    select
        customer_id,
        min(order_date) as first_order_date,
        -- two orders on the first day: the second order is on the first day too
        case
            when max(case when day_rank = 1 then day_orders end) >= 2 then min(order_date)
            else max(case when day_rank = 2 then order_date end)
        end as second_order_date
    from ranked_days
    where day_rank <= 2
    group by customer_id
)

select * from final
order by customer_id
