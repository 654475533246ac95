-- customer_facts_ends: PostgreSQL variant of customer_facts_ends.sql: the same rows, in the
--   shape of customer_facts.postgresql.sql (see there why): one pass over the orders sums
--   the amounts under FILTER clauses for both ends, a second, paid-only pass sums them
--   per customer and day for the purchase days, joined on the key with an equality (the
--   NULL key's group read by a subquery that runs once, if at all).
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
with per_customer as (
    select
        o.customer_id as customer_id,
        min(o.order_date) filter (where o.status = 'paid') as first_order_date,
        max(o.order_date) filter (where o.status = 'paid') as last_order_date,
        count(*) filter (where o.status = 'paid') as orders_total,
        sum(o.amount) filter (where o.status = 'paid') as paid_total,
        sum(o.amount) filter (where o.status = 'refunded') as refunds_total,
        count(*) filter (where o.status = 'paid' and o.order_date > :start_12m) as orders_12m,
        sum(o.amount) filter (where o.status = 'paid' and o.order_date > :start_12m) as paid_12m,
        sum(o.amount) filter (where o.status = 'refunded' and o.order_date > :start_12m)
            as refunded_12m,
        count(*) filter (where o.status = 'paid' and o.order_date > :start_90d) as orders_90d,
        sum(o.amount) filter (where o.status = 'paid' and o.order_date > :start_90d) as paid_90d,
        sum(o.amount) filter (where o.status = 'refunded' and o.order_date > :start_90d)
            as refunded_90d,
        -- one bit per rolling quarter with a paid order
        bit_or(case
            when o.status <> 'paid' or o.order_date <= :start_12m then 0
            when o.order_date <= :q1_end then 1
            when o.order_date <= :q2_end then 2
            when o.order_date <= :q3_end then 4
            else 8
        end) as quarter_bits,
        count(*) as order_rows,
        count(*) filter (where o.order_date <= :start_day) as start_order_rows,
        max(o.order_date) filter (where o.status = 'paid' and o.order_date <= :start_day)
            as start_last_order_date,
        count(*) filter (where o.status = 'paid' and o.order_date <= :start_day)
            as start_orders_total,
        sum(o.amount) filter (where o.status = 'paid' and o.order_date <= :start_day)
            as start_paid_total,
        sum(o.amount) filter (where o.status = 'refunded' and o.order_date <= :start_day)
            as start_refunds_total,
        count(*) filter (where o.status = 'paid' and o.order_date > :start_day_12m
            and o.order_date <= :start_day) as start_orders_12m,
        sum(o.amount) filter (where o.status = 'paid' and o.order_date > :start_day_12m
            and o.order_date <= :start_day) as start_paid_12m,
        sum(o.amount) filter (where o.status = 'refunded' and o.order_date > :start_day_12m
            and o.order_date <= :start_day) as start_refunded_12m,
        count(*) filter (where o.status = 'paid' and o.order_date > :start_day_90d
            and o.order_date <= :start_day) as start_orders_90d,
        sum(o.amount) filter (where o.status = 'paid' and o.order_date > :start_day_90d
            and o.order_date <= :start_day) as start_paid_90d,
        sum(o.amount) filter (where o.status = 'refunded' and o.order_date > :start_day_90d
            and o.order_date <= :start_day) as start_refunded_90d,
        bit_or(case
            when o.status <> 'paid' or o.order_date <= :start_day_12m
                or o.order_date > :start_day then 0
            when o.order_date <= :start_day_q1_end then 1
            when o.order_date <= :start_day_q2_end then 2
            when o.order_date <= :start_day_q3_end then 4
            else 8
        end) as start_quarter_bits
    from mapped_orders as o
    where o.status in ('paid', 'refunded')
      and o.order_date <= :as_of
    group by o.customer_id
),

paid_days as (
    select
        o.customer_id as customer_id,
        o.order_date as order_date,
        sum(o.amount) as paid,
        min(o.order_date) over (partition by o.customer_id) as first_order_date
    from mapped_orders as o
    where o.status = 'paid'
      and o.order_date <= :as_of
    group by o.customer_id, o.order_date
),

day_facts as (
    select
        customer_id,
        count(*) as order_days,
        sum(paid) filter (where order_date > first_order_date) as repeat_paid,
        count(*) filter (where order_date <= :start_day) as start_order_days,
        sum(paid) filter (where order_date > first_order_date and order_date <= :start_day)
            as start_repeat_paid
    from paid_days
    group by customer_id
),

null_key as (
    -- the NULL key's group of day_facts (one row at most), read once
    select
        z.order_days as order_days,
        z.repeat_paid as repeat_paid,
        z.start_order_days as start_order_days,
        z.start_repeat_paid as start_repeat_paid
    from day_facts as z
    where z.customer_id is null
),

final as (
    select
        c.customer_id,
        c.first_order_date,
        c.last_order_date,
        c.orders_total,
        coalesce(c.paid_total, 0) - coalesce(c.refunds_total, 0) as revenue_total,
        c.orders_12m,
        coalesce(c.paid_12m, 0) - coalesce(c.refunded_12m, 0) as revenue_12m,
        c.orders_90d,
        coalesce(c.paid_90d, 0) - coalesce(c.refunded_90d, 0) as revenue_90d,
        coalesce(c.refunds_total, 0) as refunds_total,
        (c.quarter_bits & 1) + (c.quarter_bits & 2) / 2 + (c.quarter_bits & 4) / 4
            + (c.quarter_bits & 8) / 8 as quarters_active_4q,
        coalesce(d.order_days, case when c.customer_id is null then (
            select n.order_days from null_key as n
        ) end, 0) as order_days,
        coalesce(d.repeat_paid, case when c.customer_id is null then (
            select n.repeat_paid from null_key as n
        ) end, 0) as repeat_paid,
        c.order_rows,
        c.start_order_rows,
        case when c.first_order_date <= :start_day then c.first_order_date end
            as start_first_order_date,
        c.start_last_order_date,
        c.start_orders_total,
        coalesce(c.start_paid_total, 0) - coalesce(c.start_refunds_total, 0)
            as start_revenue_total,
        c.start_orders_12m,
        coalesce(c.start_paid_12m, 0) - coalesce(c.start_refunded_12m, 0) as start_revenue_12m,
        c.start_orders_90d,
        coalesce(c.start_paid_90d, 0) - coalesce(c.start_refunded_90d, 0) as start_revenue_90d,
        coalesce(c.start_refunds_total, 0) as start_refunds_total,
        (c.start_quarter_bits & 1) + (c.start_quarter_bits & 2) / 2
            + (c.start_quarter_bits & 4) / 4 + (c.start_quarter_bits & 8) / 8
            as start_quarters_active_4q,
        coalesce(d.start_order_days, case when c.customer_id is null then (
            select n.start_order_days from null_key as n
        ) end, 0) as start_order_days,
        coalesce(d.start_repeat_paid, case when c.customer_id is null then (
            select n.start_repeat_paid from null_key as n
        ) end, 0) as start_repeat_paid
    from per_customer as c
    left join day_facts as d on d.customer_id = c.customer_id
)

select * from final
order by customer_id
