-- leads: Leads created in the period, each with the first paid order date (up to :as_of)
--   of the customer it converted into, for lead conversion. The conversion window is
--   judged in Python (ThresholdSettings.lead_conversion_days).
-- params:
--   period_start_at timestamp: midnight starting the period's first day (inclusive)
--   period_end_at timestamp: midnight after the period's last day (exclusive)
--   as_of date: the business date T; later orders are not seen
-- columns:
--   lead_id id: the lead's key
--   created_at timestamp: when the lead was created
--   source text: where the lead came from
--   team text: the team working the lead
--   customer_id id: the customer the lead became (NULL until converted)
--   first_order_date date: that customer's first paid order (NULL when none by :as_of)
with period_leads as (
    select
        l.lead_id as lead_id,
        l.created_at as created_at,
        l.source as source,
        l.team as team,
        l.customer_id as customer_id
    from mapped_leads as l
    where l.created_at >= :period_start_at
      and l.created_at < :period_end_at
),

first_orders as (
    select
        o.customer_id as customer_id,
        min(o.order_date) as first_order_date
    from mapped_orders as o
    where o.status = 'paid'
      and o.order_date <= :as_of
      and o.customer_id in (select customer_id from period_leads)
    group by o.customer_id
),

final as (
    select
        pl.lead_id,
        pl.created_at,
        pl.source,
        pl.team,
        pl.customer_id,
        fo.first_order_date
    from period_leads as pl
    left join first_orders as fo on fo.customer_id = pl.customer_id
)

select * from final
order by lead_id
