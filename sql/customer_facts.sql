-- customer_facts: Per-customer order facts as of :as_of, aggregated inside the database.
--   Paid orders count as orders; a refunded row is money returned on its date (it
--   reduces revenue, it is not an order); cancelled rows are ignored. Customers
--   appear when they have any paid or refunded row on or before :as_of.
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
--   order_days int: distinct days with a paid order, lifetime (lifetimes' frequency + 1)
--   repeat_paid money: paid amounts after the first paid-order day, lifetime (monetary x frequency)
--   order_rows int: paid and refunded rows, lifetime (the revenue reconciliation's rows)
-- notes: Statuses other than 'paid' and 'refunded' are ignored (orders.sql recodes the
--   company's own codes).
with order_lines as (
    select
        o.customer_id as customer_id,
        o.order_date as order_date,
        case when o.status = 'paid' then 1 else 0 end as is_order,
        case when o.status = 'paid' then o.amount else -o.amount end as net_amount,
        case when o.status = 'refunded' then o.amount else 0 end as refund_amount
    from mapped_orders as o
    where o.status in ('paid', 'refunded')
      and o.order_date <= :as_of
),

order_days as (
    -- one row per customer and day: the value models count purchase days, not orders
    select
        customer_id,
        order_date,
        count(*) as day_rows,
        sum(is_order) as day_orders,
        sum(net_amount) as day_net,
        sum(case when is_order = 1 then net_amount else 0 end) as day_paid,
        sum(refund_amount) as day_refunds
    from order_lines
    group by customer_id, order_date
),

dated_days as (
    select
        customer_id,
        order_date,
        day_rows,
        day_orders,
        day_net,
        day_paid,
        day_refunds,
        min(case when day_orders > 0 then order_date end)
            over (partition by customer_id) as first_order_date
    from order_days
),

per_customer as (
    select
        customer_id,
        min(first_order_date) as first_order_date,
        max(case when day_orders > 0 then order_date end) as last_order_date,
        sum(day_orders) as orders_total,
        sum(day_net) as revenue_total,
        sum(case when order_date > :start_12m then day_orders else 0 end) as orders_12m,
        sum(case when order_date > :start_12m then day_net else 0 end) as revenue_12m,
        sum(case when order_date > :start_90d then day_orders else 0 end) as orders_90d,
        sum(case when order_date > :start_90d then day_net else 0 end) as revenue_90d,
        sum(day_refunds) as refunds_total,
        max(case when day_orders > 0 and order_date > :start_12m and order_date <= :q1_end
            then 1 else 0 end) as active_q1,
        max(case when day_orders > 0 and order_date > :q1_end and order_date <= :q2_end
            then 1 else 0 end) as active_q2,
        max(case when day_orders > 0 and order_date > :q2_end and order_date <= :q3_end
            then 1 else 0 end) as active_q3,
        max(case when day_orders > 0 and order_date > :q3_end then 1 else 0 end) as active_q4,
        sum(case when day_orders > 0 then 1 else 0 end) as order_days,
        sum(case when order_date > first_order_date then day_paid else 0 end) as repeat_paid,
        sum(day_rows) as order_rows
    from dated_days
    group by customer_id
),

final as (
    select
        customer_id,
        first_order_date,
        last_order_date,
        orders_total,
        revenue_total,
        orders_12m,
        revenue_12m,
        orders_90d,
        revenue_90d,
        refunds_total,
        active_q1 + active_q2 + active_q3 + active_q4 as quarters_active_4q,
        order_days,
        repeat_paid,
        order_rows
    from per_customer
)

select * from final
order by customer_id
