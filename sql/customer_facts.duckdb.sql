-- customer_facts: DuckDB variant of customer_facts.sql: the same rows, in no particular
--   order (the per-customer table joins them by key). DuckDB aggregates by hashing: its
--   cost is about one hash probe per order row plus one update per aggregate, and
--   every FILTER clause is one more pass over the rows. So the paid orders are first
--   summed per customer and day (the value models count purchase days; arg_min then
--   gives the first day's amount without a join), and each day row is aggregated once,
--   by plain aggregates over rows already selected: days up to T-365 days (the
--   lifetime values), days of the last 365 days (those plus the 90-day and quarter
--   values) and refunds (a few percent of the rows); the three small results are then
--   joined. The four rolling quarters are one bit mask.
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
-- notes: Reads the orders in three places (paid before T-365, paid since, refunded); delete
--   this file to use the portable query.
with paid_days as (
    select
        o.customer_id as customer_id,
        o.order_date as order_date,
        count(*) as orders,
        sum(o.amount) as paid
    from mapped_orders as o
    where o.status = 'paid'
      and o.order_date <= :as_of
    group by o.customer_id, o.order_date
),

paid_before_12m as (
    select
        d.customer_id as customer_id,
        min(d.order_date) as first_order_date,
        max(d.order_date) as last_order_date,
        sum(d.orders) as orders,
        sum(d.paid) as paid,
        count(*) as days,
        arg_min(d.paid, d.order_date) as first_day_paid
    from paid_days as d
    where d.order_date <= :start_12m
    group by d.customer_id
),

paid_last_12m as (
    select
        d.customer_id as customer_id,
        min(d.order_date) as first_order_date,
        max(d.order_date) as last_order_date,
        sum(d.orders) as orders,
        sum(d.paid) as paid,
        sum(d.orders) filter (where d.order_date > :start_90d) as orders_90d,
        sum(d.paid) filter (where d.order_date > :start_90d) as paid_90d,
        -- one bit per rolling quarter with a paid order, then the bits set
        bit_count(bit_or(
            case
                when d.order_date <= :q1_end then 1
                when d.order_date <= :q2_end then 2
                when d.order_date <= :q3_end then 4
                else 8
            end
        )) as quarters_active_4q,
        count(*) as days,
        arg_min(d.paid, d.order_date) as first_day_paid
    from paid_days as d
    where d.order_date > :start_12m
    group by d.customer_id
),

refunds as (
    select
        o.customer_id as customer_id,
        count(*) as refund_rows,
        sum(o.amount) as refunded,
        sum(o.amount) filter (where o.order_date > :start_12m) as refunded_12m,
        sum(o.amount) filter (where o.order_date > :start_90d) as refunded_90d
    from mapped_orders as o
    where o.status = 'refunded'
      and o.order_date <= :as_of
    group by o.customer_id
),

paid as (
    select
        coalesce(r.customer_id, b.customer_id) as customer_id,
        coalesce(b.first_order_date, r.first_order_date) as first_order_date,
        coalesce(r.last_order_date, b.last_order_date) as last_order_date,
        coalesce(b.orders, 0) + coalesce(r.orders, 0) as orders_total,
        coalesce(b.paid, 0) + coalesce(r.paid, 0) as paid_total,
        coalesce(r.orders, 0) as orders_12m,
        coalesce(r.paid, 0) as paid_12m,
        coalesce(r.orders_90d, 0) as orders_90d,
        coalesce(r.paid_90d, 0) as paid_90d,
        coalesce(r.quarters_active_4q, 0) as quarters_active_4q,
        coalesce(b.days, 0) + coalesce(r.days, 0) as order_days,
        coalesce(b.paid, 0) + coalesce(r.paid, 0)
            - coalesce(b.first_day_paid, r.first_day_paid) as repeat_paid
    from paid_before_12m as b
    -- rows without a customer id form one group in each (is not distinct from: NULL = NULL)
    full join paid_last_12m as r on r.customer_id is not distinct from b.customer_id
),

final as (
    select
        coalesce(p.customer_id, f.customer_id) as customer_id,
        p.first_order_date as first_order_date,
        p.last_order_date as last_order_date,
        coalesce(p.orders_total, 0) as orders_total,
        coalesce(p.paid_total, 0) - coalesce(f.refunded, 0) as revenue_total,
        coalesce(p.orders_12m, 0) as orders_12m,
        coalesce(p.paid_12m, 0) - coalesce(f.refunded_12m, 0) as revenue_12m,
        coalesce(p.orders_90d, 0) as orders_90d,
        coalesce(p.paid_90d, 0) - coalesce(f.refunded_90d, 0) as revenue_90d,
        coalesce(f.refunded, 0) as refunds_total,
        coalesce(p.quarters_active_4q, 0) as quarters_active_4q,
        coalesce(p.order_days, 0) as order_days,
        coalesce(p.repeat_paid, 0) as repeat_paid,
        coalesce(p.orders_total, 0) + coalesce(f.refund_rows, 0) as order_rows
    from paid as p
    full join refunds as f on f.customer_id is not distinct from p.customer_id
)

select * from final
