-- customer_churn_window: Paid orders per customer in the calendar windows of the churn
--   warning (see crm_batch/kpi/churn.py). The quiet window is the last churn_quiet_months
--   full calendar months completed by T (T's month counts only when T is its last day);
--   the lookback is the churn_lookback_months calendar months before the quiet window;
--   what is left of T's month, from quiet_end to T, is the current month. With the
--   defaults, T = 2026-07-15 gives lookback 2025-04-01..2026-03-31, quiet months
--   2026-04-01..2026-06-30 and current month 2026-07-01..2026-07-15; T = 2026-06-30 gives
--   the same lookback and quiet months and an empty current month. Paid and refunded rows
--   count as in customer_facts.sql. Only customers with a paid or refunded row from
--   lookback_start to T appear.
-- params:
--   as_of date: the business date T (inclusive)
--   lookback_start date: first day of the lookback window
--   quiet_start date: first day of the quiet window (the day after the lookback)
--   quiet_end date: the day after the quiet window (first day of a month)
-- columns:
--   customer_id id: the customer's key
--   orders_lookback int: paid orders in [lookback_start, quiet_start)
--   revenue_lookback money: paid minus refunded amounts in [lookback_start, quiet_start)
--   orders_quiet int: paid orders in [quiet_start, quiet_end)
--   orders_current_month int: paid orders in [quiet_end, T] (none when T ends its month)
with order_lines as (
    select
        o.customer_id as customer_id,
        o.order_date as order_date,
        case when o.status = 'paid' then 1 else 0 end as is_order,
        case when o.status = 'paid' then o.amount else -o.amount end as net_amount
    from mapped_orders as o
    where o.status in ('paid', 'refunded')
      and o.order_date >= :lookback_start
      and o.order_date <= :as_of
),

final as (
    select
        customer_id,
        sum(case when order_date < :quiet_start then is_order else 0 end) as orders_lookback,
        sum(case when order_date < :quiet_start then net_amount else 0 end) as revenue_lookback,
        sum(case when order_date >= :quiet_start and order_date < :quiet_end
            then is_order else 0 end) as orders_quiet,
        sum(case when order_date >= :quiet_end then is_order else 0 end)
            as orders_current_month
    from order_lines
    group by customer_id
)

select * from final
order by customer_id
