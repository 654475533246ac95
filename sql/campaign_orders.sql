-- campaign_orders: Paid orders that a touch of the period can convert: orders of customers
--   touched in the period, dated from the period's start to the end of the attribution
--   window. One row per order; attribution to touches is done in Python (merge_asof).
-- params:
--   period_start date: first day of the period (inclusive)
--   attribution_end date: last day an order can still be attributed (inclusive)
--   period_start_at timestamp: midnight starting the period's first day (inclusive)
--   period_end_at timestamp: midnight after the period's last day (exclusive)
-- columns:
--   order_id id: the order's key
--   customer_id id: the customer
--   order_date date: the order date
--   amount money: the paid amount
with touched as (
    select distinct t.customer_id as customer_id
    from mapped_touches as t
    where t.sent_at >= :period_start_at
      and t.sent_at < :period_end_at
),

final as (
    select
        o.order_id as order_id,
        o.customer_id as customer_id,
        o.order_date as order_date,
        o.amount as amount
    from mapped_orders as o
    where o.status = 'paid'
      and o.order_date >= :period_start
      and o.order_date <= :attribution_end
      and o.customer_id in (select customer_id from touched)
)

select * from final
order by order_id
