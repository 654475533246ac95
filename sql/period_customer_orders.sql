-- period_customer_orders: Per-customer paid orders and net revenue inside the period
--   [:period_start, :period_end], and the last paid order before it (for repurchase,
--   churn and win-back). A refunded row reduces revenue and is not an order; cancelled
--   rows are ignored. One row per customer with a paid or refunded row on or before
--   :period_end.
-- params:
--   period_start date: first day of the period (inclusive)
--   period_end date: last day of the period, clipped to the business date (inclusive)
-- columns:
--   customer_id id: the customer's key
--   last_order_before_date date: last paid order before period_start (NULL when none)
--   last_order_date date: last paid order on or before period_end (NULL when none)
--   orders_in_period int: paid orders dated in the period
--   revenue_in_period money: paid minus refunded amounts dated in the period
--   order_days_in_period int: distinct days with a paid order in the period (purchase days)
with order_lines as (
    select
        o.customer_id as customer_id,
        o.order_date as order_date,
        case when o.status = 'paid' then 1 else 0 end as is_order,
        case when o.status = 'paid' then o.amount else -o.amount end as net_amount
    from mapped_orders as o
    where o.status in ('paid', 'refunded')
      and o.order_date <= :period_end
),

final as (
    select
        customer_id,
        max(case when is_order = 1 and order_date < :period_start
            then order_date end) as last_order_before_date,
        max(case when is_order = 1 then order_date end) as last_order_date,
        sum(case when order_date >= :period_start then is_order else 0 end)
            as orders_in_period,
        sum(case when order_date >= :period_start then net_amount else 0 end)
            as revenue_in_period,
        count(distinct case when is_order = 1 and order_date >= :period_start
            then order_date end) as order_days_in_period
    from order_lines
    group by customer_id
)

select * from final
order by customer_id
