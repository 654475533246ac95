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
-- notes: The rows dated up to T are summed per customer before they meet the register (an
--   index on (customer_id, order_date) serves that; a join of every order row to the
--   register spilled to disk on PostgreSQL). DuckDB runs the .duckdb.sql variant, which
--   joins every row.
with customer_keys as (
    select
        c.customer_id as customer_id,
        max(case when c.signup_date <= :as_of then 1 else 0 end) as is_registered
    from mapped_customers as c
    where c.customer_id is not null
    group by c.customer_id
),

dated_by_customer as (
    -- rows dated up to T, summed per customer first: a database reads them in customer
    -- order from an index on (customer_id, order_date, ...), and only one row per
    -- customer meets the register
    select
        o.customer_id as customer_id,
        count(*) as order_rows,
        sum(case when o.status = 'paid' then 1 else 0 end) as paid_orders,
        sum(case when o.status = 'paid' then o.amount else -o.amount end) as net_revenue
    from mapped_orders as o
    where o.status in ('paid', 'refunded')
      and o.order_date <= :as_of
    group by o.customer_id
),

dated as (
    select
        case
            when d.customer_id is null then 'no_customer'
            when k.customer_id is null then 'unknown_customer'
            when k.is_registered = 0 then 'unregistered_customer'
            else 'attributed'
        end as bucket,
        d.order_rows as order_rows,
        d.paid_orders as paid_orders,
        d.net_revenue as net_revenue
    from dated_by_customer as d
    left join customer_keys as k on k.customer_id = d.customer_id
),

undated_or_later as (
    select
        case when o.order_date is null then 'undated' else 'after_as_of' end as bucket,
        case when o.status = 'paid' then 1 else 0 end as is_order,
        case when o.status = 'paid' then o.amount else -o.amount end as net_amount
    from mapped_orders as o
    where o.status in ('paid', 'refunded')
      and (o.order_date is null or o.order_date > :as_of)
),

final as (
    select
        bucket,
        sum(order_rows) as order_rows,
        sum(paid_orders) as paid_orders,
        sum(net_revenue) as net_revenue
    from dated
    group by bucket
    union all
    select
        bucket,
        count(*) as order_rows,
        sum(is_order) as paid_orders,
        sum(net_amount) as net_revenue
    from undated_or_later
    group by bucket
)

select * from final
order by bucket
