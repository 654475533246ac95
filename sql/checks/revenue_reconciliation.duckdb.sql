-- revenue_reconciliation: Every paid and refunded row in one bucket, with its rows, paid
--   orders and net revenue (paid minus refunded), so that the source total equals the
--   KPIs' attributed total plus each documented exclusion. Not a check: quality.py runs
--   it to reconcile the per-customer table of :as_of. Buckets, first match wins:
--   undated (no order_date), after_as_of (dated after T), no_customer (customer_id
--   NULL), unknown_customer (in no customers row), unregistered_customer (signed up
--   after T or no signup date), attributed (in the register of T: what the KPIs sum).
-- params:
--   as_of date: the business date T (inclusive)
-- columns:
--   bucket text: the bucket's name
--   order_rows int: paid and refunded rows in it
--   paid_orders int: paid rows in it
--   net_revenue money: paid minus refunded amounts in it
-- notes: DuckDB variant of revenue_reconciliation.sql: the same buckets, from a hash join
--   of every order row to the register (faster on DuckDB than summing per customer first).
with customer_keys as (
    select
        c.customer_id as customer_id,
        max(case when c.signup_date <= :as_of then 1 else 0 end) as is_registered
    from mapped_customers as c
    where c.customer_id is not null
    group by c.customer_id
),

order_lines as (
    select
        o.customer_id as customer_id,
        o.order_date as order_date,
        case when o.status = 'paid' then 1 else 0 end as is_order,
        case when o.status = 'paid' then o.amount else -o.amount end as net_amount
    from mapped_orders as o
    where o.status in ('paid', 'refunded')
),

bucketed as (
    select
        case
            when ol.order_date is null then 'undated'
            when ol.order_date > :as_of then 'after_as_of'
            when ol.customer_id is null then 'no_customer'
            when k.customer_id is null then 'unknown_customer'
            when k.is_registered = 0 then 'unregistered_customer'
            else 'attributed'
        end as bucket,
        ol.is_order as is_order,
        ol.net_amount as net_amount
    from order_lines as ol
    left join customer_keys as k on k.customer_id = ol.customer_id
),

final as (
    select
        bucket,
        count(*) as order_rows,
        sum(is_order) as paid_orders,
        sum(net_amount) as net_revenue
    from bucketed
    group by bucket
)

select * from final
order by bucket
