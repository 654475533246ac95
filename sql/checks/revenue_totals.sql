-- revenue_totals: Not a check: every paid and refunded row's totals by date class, for
--   the revenue reconciliation (crm_batch.app.reconciliation). The rows dated up to
--   :as_of must add up to the per-customer order facts of :as_of (customer_facts.sql and
--   customer_facts_ends.sql, which hold every customer_id, none and unknown ones
--   included); undated rows and rows dated after :as_of are the exclusions the facts
--   leave out. One pass over the orders without a join: the split by customer comes
--   from the facts the run already has.
-- params:
--   as_of date: the business date T (inclusive)
-- columns:
--   date_class text: up_to_as_of, after_as_of or undated
--   order_rows int: paid and refunded rows in it
--   paid_orders int: paid rows in it
--   net_revenue money: paid minus refunded amounts in it
with classified as (
    select
        case
            when o.order_date is null then 'undated'
            when o.order_date > :as_of then 'after_as_of'
            else 'up_to_as_of'
        end as date_class,
        case when o.status = 'paid' then 1 else 0 end as is_order,
        case when o.status = 'paid' then o.amount else -o.amount end as net_amount
    from mapped_orders as o
    where o.status in ('paid', 'refunded')
),

final as (
    select
        date_class,
        count(*) as order_rows,
        sum(is_order) as paid_orders,
        sum(net_amount) as net_revenue
    from classified
    group by date_class
)

select * from final
order by date_class
