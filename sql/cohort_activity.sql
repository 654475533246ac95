-- cohort_activity: Buyers per team, first-order month (cohort) and months since it, up to
--   :as_of, for the cohorts from :cohort_start on: the counts behind the cohort retention
--   matrix. Only customers whose first paid order is on or after :cohort_start count
--   (found with one GROUP BY over the paid orders), so the (customer, calendar month)
--   rows are built for the recent cohorts alone; window functions then find each
--   customer's first month, and only the small (team, cohort, months_since) table
--   returns.
--   Orders without a customer id count in no cohort (as in every per-customer KPI).
-- params:
--   as_of date: the business date T (inclusive)
--   cohort_start date: first day of the oldest cohort month returned (older ones are left out)
-- columns:
--   team text: the customer's team (NULL when the customer has none)
--   cohort_month int: the first paid order's month as YYYYMM (e.g. 202603)
--   months_since int: calendar months from the cohort month (0 = the cohort month)
--   customers int: customers of the cohort with a paid order in that month
-- notes: The month is taken with EXTRACT, which SQLite lacks: cohort_activity.sqlite.sql
--   uses strftime instead. The cast to integer keeps the month arithmetic in integers
--   (PostgreSQL's EXTRACT answers in numeric, which made this query twice as slow there).
with new_buyers as (
    select o.customer_id as customer_id
    from mapped_orders as o
    where o.status = 'paid'
      and o.order_date <= :as_of
    group by o.customer_id
    having min(o.order_date) >= :cohort_start
),

paid_months as (
    select
        o.customer_id as customer_id,
        cast(extract(year from o.order_date) as integer) as order_year,
        cast(extract(month from o.order_date) as integer) as order_month
    from mapped_orders as o
    inner join new_buyers as nb on nb.customer_id = o.customer_id
    where o.status = 'paid'
      and o.order_date >= :cohort_start
      and o.order_date <= :as_of
),

customer_months as (
    select
        customer_id,
        order_year * 12 + order_month as month_index,
        order_year * 100 + order_month as order_yyyymm
    from paid_months
    group by customer_id, order_year, order_month
),

with_cohort as (
    select
        customer_id,
        month_index - min(month_index) over (partition by customer_id) as months_since,
        min(order_yyyymm) over (partition by customer_id) as cohort_month
    from customer_months
),

final as (
    select
        c.team as team,
        wc.cohort_month as cohort_month,
        wc.months_since as months_since,
        count(*) as customers
    from with_cohort as wc
    left join mapped_customers as c on c.customer_id = wc.customer_id
    group by c.team, wc.cohort_month, wc.months_since
)

select * from final
order by team, cohort_month, months_since
