-- customer_facts_ends: The order facts of customer_facts.sql at both ends of a period in
--   one pass over the orders: as of :as_of (the period's last day) and as of :start_day
--   (the day before the period). Each end's values are exactly those customer_facts.sql
--   gives for that date; a customer is in the facts at the start when start_order_rows > 0
--   (crm_batch.source.extract_period.split_ends cuts the two frames apart).
-- params:
--   as_of date: the period's (clipped) last day, the end T (inclusive)
--   start_12m date: T - 365 days; the 12-month window is (start_12m, T]
--   start_90d date: T - 90 days; the 90-day window is (start_90d, T]
--   q1_end date: T - 273 days; rolling quarter 1 is (start_12m, q1_end]
--   q2_end date: T - 182 days; rolling quarter 2 is (q1_end, q2_end]
--   q3_end date: T - 91 days; rolling quarter 3 is (q2_end, q3_end], quarter 4 (q3_end, T]
--   start_day date: the day before the period, S (before T)
--   start_day_12m date: S - 365 days
--   start_day_90d date: S - 90 days
--   start_day_q1_end date: S - 273 days
--   start_day_q2_end date: S - 182 days
--   start_day_q3_end date: S - 91 days
-- columns:
--   customer_id id: the customer's key
--   first_order_date date: first paid order up to T (NULL if the customer only has refunds)
--   last_order_date date: last paid order up to T
--   orders_total int: paid orders up to T
--   revenue_total money: paid minus refunded amounts up to T
--   orders_12m int: paid orders in (T-365, T]
--   revenue_12m money: net revenue in (T-365, T]
--   orders_90d int: paid orders in (T-90, T]
--   revenue_90d money: net revenue in (T-90, T]
--   refunds_total money: refunded amounts up to T (positive)
--   quarters_active_4q int: rolling quarters of (T-365, T] with a paid order
--   order_days int: distinct days with a paid order up to T
--   repeat_paid money: paid amounts after the first paid-order day, up to T
--   order_rows int: paid and refunded rows up to T (the revenue reconciliation's rows)
--   start_order_rows int: paid and refunded rows up to S (0: not in the facts at the start)
--   start_first_order_date date: first paid order up to S
--   start_last_order_date date: last paid order up to S
--   start_orders_total int: paid orders up to S
--   start_revenue_total money: paid minus refunded amounts up to S
--   start_orders_12m int: paid orders in (S-365, S]
--   start_revenue_12m money: net revenue in (S-365, S]
--   start_orders_90d int: paid orders in (S-90, S]
--   start_revenue_90d money: net revenue in (S-90, S]
--   start_refunds_total money: refunded amounts up to S (positive)
--   start_quarters_active_4q int: rolling quarters of (S-365, S] with a paid order
--   start_order_days int: distinct days with a paid order up to S
--   start_repeat_paid money: paid amounts after the first paid-order day, up to S
-- notes: The same definitions as customer_facts.sql (edit both together); the orders are
--   summed per customer and day once, and each end's values are conditional sums over
--   those day rows.
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
        case when order_date <= :start_day then 1 else 0 end as at_start,
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
        sum(day_rows) as order_rows,
        sum(at_start * day_rows) as start_order_rows,
        min(case when at_start = 1 and day_orders > 0 then order_date end)
            as start_first_order_date,
        max(case when at_start = 1 and day_orders > 0 then order_date end)
            as start_last_order_date,
        sum(at_start * day_orders) as start_orders_total,
        sum(case when at_start = 1 then day_net else 0 end) as start_revenue_total,
        sum(case when at_start = 1 and order_date > :start_day_12m then day_orders else 0 end)
            as start_orders_12m,
        sum(case when at_start = 1 and order_date > :start_day_12m then day_net else 0 end)
            as start_revenue_12m,
        sum(case when at_start = 1 and order_date > :start_day_90d then day_orders else 0 end)
            as start_orders_90d,
        sum(case when at_start = 1 and order_date > :start_day_90d then day_net else 0 end)
            as start_revenue_90d,
        sum(case when at_start = 1 then day_refunds else 0 end) as start_refunds_total,
        max(case when day_orders > 0 and order_date > :start_day_12m
            and order_date <= :start_day_q1_end then 1 else 0 end) as start_active_q1,
        max(case when day_orders > 0 and order_date > :start_day_q1_end
            and order_date <= :start_day_q2_end then 1 else 0 end) as start_active_q2,
        max(case when day_orders > 0 and order_date > :start_day_q2_end
            and order_date <= :start_day_q3_end then 1 else 0 end) as start_active_q3,
        max(case when day_orders > 0 and order_date > :start_day_q3_end
            and at_start = 1 then 1 else 0 end) as start_active_q4,
        sum(case when at_start = 1 and day_orders > 0 then 1 else 0 end) as start_order_days,
        sum(case when at_start = 1 and order_date > first_order_date then day_paid else 0 end)
            as start_repeat_paid
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
        order_rows,
        start_order_rows,
        start_first_order_date,
        start_last_order_date,
        start_orders_total,
        start_revenue_total,
        start_orders_12m,
        start_revenue_12m,
        start_orders_90d,
        start_revenue_90d,
        start_refunds_total,
        start_active_q1 + start_active_q2 + start_active_q3 + start_active_q4
            as start_quarters_active_4q,
        start_order_days,
        start_repeat_paid
    from per_customer
)

select * from final
order by customer_id
