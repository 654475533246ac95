-- customer_facts_ends: DuckDB variant of customer_facts_ends.sql: the same rows, in no
--   particular order. As in customer_facts.duckdb.sql the paid orders are summed per
--   customer and day once (the value models count purchase days; arg_min gives the first
--   day's amount without a join) and each day row is aggregated once for both ends by
--   plain sums of CASE values (a FILTER clause costs DuckDB a pass over the rows each);
--   the refunds (a few percent of the rows) are summed on their own and joined.
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
-- notes: Reads the orders twice (paid, refunded); delete this file to use the portable
--   query.
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

paid as (
    select
        d.customer_id as customer_id,
        min(d.order_date) as first_order_date,
        max(d.order_date) as last_order_date,
        sum(d.orders) as orders_total,
        sum(d.paid) as paid_total,
        sum(case when d.order_date > :start_12m then d.orders else 0 end) as orders_12m,
        sum(case when d.order_date > :start_12m then d.paid else 0 end) as paid_12m,
        sum(case when d.order_date > :start_90d then d.orders else 0 end) as orders_90d,
        sum(case when d.order_date > :start_90d then d.paid else 0 end) as paid_90d,
        -- one bit per rolling quarter with a paid order, then the bits set
        bit_count(bit_or(
            case
                when d.order_date <= :start_12m then 0
                when d.order_date <= :q1_end then 1
                when d.order_date <= :q2_end then 2
                when d.order_date <= :q3_end then 4
                else 8
            end
        )) as quarters_active_4q,
        count(*) as order_days,
        arg_min(d.paid, d.order_date) as first_day_paid,
        max(case when d.order_date <= :start_day then d.order_date end)
            as start_last_order_date,
        sum(case when d.order_date <= :start_day then d.orders else 0 end)
            as start_orders_total,
        sum(case when d.order_date <= :start_day then d.paid else 0 end) as start_paid_total,
        sum(case when d.order_date > :start_day_12m and d.order_date <= :start_day
            then d.orders else 0 end) as start_orders_12m,
        sum(case when d.order_date > :start_day_12m and d.order_date <= :start_day
            then d.paid else 0 end) as start_paid_12m,
        sum(case when d.order_date > :start_day_90d and d.order_date <= :start_day
            then d.orders else 0 end) as start_orders_90d,
        sum(case when d.order_date > :start_day_90d and d.order_date <= :start_day
            then d.paid else 0 end) as start_paid_90d,
        bit_count(bit_or(
            case
                when d.order_date <= :start_day_12m or d.order_date > :start_day then 0
                when d.order_date <= :start_day_q1_end then 1
                when d.order_date <= :start_day_q2_end then 2
                when d.order_date <= :start_day_q3_end then 4
                else 8
            end
        )) as start_quarters_active_4q,
        sum(case when d.order_date <= :start_day then 1 else 0 end) as start_order_days
    from paid_days as d
    group by d.customer_id
),

refunds as (
    select
        o.customer_id as customer_id,
        count(*) as refund_rows,
        sum(o.amount) as refunded,
        sum(case when o.order_date > :start_12m then o.amount else 0 end) as refunded_12m,
        sum(case when o.order_date > :start_90d then o.amount else 0 end) as refunded_90d,
        sum(case when o.order_date <= :start_day then 1 else 0 end) as start_refund_rows,
        sum(case when o.order_date <= :start_day then o.amount else 0 end) as start_refunded,
        sum(case when o.order_date > :start_day_12m and o.order_date <= :start_day
            then o.amount else 0 end) as start_refunded_12m,
        sum(case when o.order_date > :start_day_90d and o.order_date <= :start_day
            then o.amount else 0 end) as start_refunded_90d
    from mapped_orders as o
    where o.status = 'refunded'
      and o.order_date <= :as_of
    group by o.customer_id
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
        coalesce(p.paid_total - p.first_day_paid, 0) as repeat_paid,
        coalesce(p.orders_total, 0) + coalesce(f.refund_rows, 0) as order_rows,
        coalesce(p.start_orders_total, 0) + coalesce(f.start_refund_rows, 0)
            as start_order_rows,
        case when p.first_order_date <= :start_day then p.first_order_date end
            as start_first_order_date,
        p.start_last_order_date as start_last_order_date,
        coalesce(p.start_orders_total, 0) as start_orders_total,
        coalesce(p.start_paid_total, 0) - coalesce(f.start_refunded, 0)
            as start_revenue_total,
        coalesce(p.start_orders_12m, 0) as start_orders_12m,
        coalesce(p.start_paid_12m, 0) - coalesce(f.start_refunded_12m, 0)
            as start_revenue_12m,
        coalesce(p.start_orders_90d, 0) as start_orders_90d,
        coalesce(p.start_paid_90d, 0) - coalesce(f.start_refunded_90d, 0)
            as start_revenue_90d,
        coalesce(f.start_refunded, 0) as start_refunds_total,
        coalesce(p.start_quarters_active_4q, 0) as start_quarters_active_4q,
        coalesce(p.start_order_days, 0) as start_order_days,
        case when p.start_order_days > 0 then p.start_paid_total - p.first_day_paid else 0 end
            as start_repeat_paid
    from paid as p
    -- rows without a customer id form one group in each (is not distinct from: NULL = NULL)
    full join refunds as f on f.customer_id is not distinct from p.customer_id
)

select * from final
