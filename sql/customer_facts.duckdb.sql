-- customer_facts: DuckDB variant of customer_facts.sql: the same rows, in no particular
--   order (the per-customer table joins them by key). DuckDB aggregates by hashing, so
--   its cost is about one hash probe per order row plus one update per aggregate. The
--   rows are therefore split at T-365 days: the older rows get the five lifetime
--   aggregates, the rows of the last 365 days (a third of them on a three-year history,
--   and the table's zone maps skip the rest) get those five plus the 90-day and quarter
--   ones, and the two are added up. Every row is aggregated once (the portable shape
--   updates every aggregate for every row; a lifetime pass plus a 12-month pass would
--   read the recent rows twice); the four rolling quarters are one bit mask.
-- params:
--   as_of date: the business date T (inclusive)
--   start_12m date: T - 365 days; the 12-month window is (start_12m, T]
--   start_90d date: T - 90 days; the 90-day window is (start_90d, T]
--   q1_end date: T - 273 days; rolling quarter 1 is (start_12m, q1_end]
--   q2_end date: T - 182 days; rolling quarter 2 is (q1_end, q2_end]
--   q3_end date: T - 91 days; rolling quarter 3 is (q2_end, q3_end], quarter 4 (q3_end, T]
-- columns:
--   customer_id id: the customer's key
--   first_order_date date: first paid order (NULL if the customer only has refunds)
--   last_order_date date: last paid order
--   orders_total int: paid orders, lifetime
--   revenue_total money: paid minus refunded amounts, lifetime
--   orders_12m int: paid orders in (T-365, T]
--   revenue_12m money: net revenue in (T-365, T]
--   orders_90d int: paid orders in (T-90, T]
--   revenue_90d money: net revenue in (T-90, T]
--   refunds_total money: refunded amounts, lifetime (positive)
--   quarters_active_4q int: how many of the 4 rolling quarters of the last 365 days have a paid order
-- adapt: As customer_facts.sql: map your order lines onto (customer_id, order_date,
--   amount, status) in the order_lines CTE the same way in both files.
with order_lines as not materialized (
    -- both aggregations read the orders directly (materialized, DuckDB would first
    -- store the ten million order lines, because two CTEs read them)
    select
        o.customer_id as customer_id,
        o.order_date as order_date,
        o.status = 'paid' as is_order,
        case when o.status = 'paid' then o.amount else -o.amount end as net_amount
    from orders as o
    where o.status in ('paid', 'refunded')
      and o.order_date <= :as_of
),

before_12m as (
    select
        customer_id,
        min(order_date) filter (where is_order) as first_order_date,
        max(order_date) filter (where is_order) as last_order_date,
        count(*) filter (where is_order) as orders,
        sum(net_amount) as revenue,
        -sum(net_amount) filter (where not is_order) as refunds
    from order_lines
    where order_date <= :start_12m
    group by customer_id
),

last_12m as (
    select
        customer_id,
        min(order_date) filter (where is_order) as first_order_date,
        max(order_date) filter (where is_order) as last_order_date,
        count(*) filter (where is_order) as orders,
        sum(net_amount) as revenue,
        -sum(net_amount) filter (where not is_order) as refunds,
        count(*) filter (where is_order and order_date > :start_90d) as orders_90d,
        sum(net_amount) filter (where order_date > :start_90d) as revenue_90d,
        -- one bit per rolling quarter with a paid order, then the bits set
        bit_count(bit_or(
            case
                when not is_order then 0
                when order_date <= :q1_end then 1
                when order_date <= :q2_end then 2
                when order_date <= :q3_end then 4
                else 8
            end
        )) as quarters_active_4q
    from order_lines
    where order_date > :start_12m
    group by customer_id
),

final as (
    select
        coalesce(r.customer_id, b.customer_id) as customer_id,
        coalesce(b.first_order_date, r.first_order_date) as first_order_date,
        coalesce(r.last_order_date, b.last_order_date) as last_order_date,
        coalesce(b.orders, 0) + coalesce(r.orders, 0) as orders_total,
        coalesce(b.revenue, 0) + coalesce(r.revenue, 0) as revenue_total,
        coalesce(r.orders, 0) as orders_12m,
        coalesce(r.revenue, 0) as revenue_12m,
        coalesce(r.orders_90d, 0) as orders_90d,
        coalesce(r.revenue_90d, 0) as revenue_90d,
        coalesce(b.refunds, 0) + coalesce(r.refunds, 0) as refunds_total,
        coalesce(r.quarters_active_4q, 0) as quarters_active_4q
    from before_12m as b
    -- rows without a customer id form one group in each (is not distinct from: NULL = NULL)
    full join last_12m as r on r.customer_id is not distinct from b.customer_id
)

select * from final
