-- cohort_activity: DuckDB variant of cohort_activity.sql. DuckDB joins hash tables
--   faster than it sorts millions of (customer, month) rows for a window, so the
--   cohort (first month) of each customer comes from a GROUP BY joined back: about 40 %
--   faster on DuckDB. Elsewhere keep the window (PostgreSQL materialises a CTE that is
--   read twice and can plan the join very badly). Like cohort_activity.sql it counts
--   only the customers whose first paid order is on or after :cohort_start.
--   Orders without a customer id count in no cohort (as in every per-customer KPI).
-- params:
--   as_of date: the business date T (inclusive)
--   cohort_start date: first day of the oldest cohort month returned (older ones are left out)
-- columns:
--   team text: the customer's team (NULL when the customer has none)
--   cohort_month int: the first paid order's month as YYYYMM (e.g. 202603)
--   months_since int: calendar months from the cohort month (0 = the cohort month)
--   customers int: customers of the cohort with a paid order in that month
with new_buyers as (
    select o.customer_id as customer_id
    from mapped_orders as o
    where o.status = 'paid'
      and o.order_date <= :as_of
    group by o.customer_id
    having min(o.order_date) >= :cohort_start
),

customer_months as (
    select
        o.customer_id as customer_id,
        cast(extract(year from o.order_date) as integer) * 12
            + cast(extract(month from o.order_date) as integer) as month_index,
        cast(extract(year from o.order_date) as integer) * 100
            + cast(extract(month from o.order_date) as integer) as order_yyyymm
    from mapped_orders as o
    where o.status = 'paid'
      and o.order_date >= :cohort_start
      and o.order_date <= :as_of
      and o.customer_id in (select nb.customer_id from new_buyers as nb)
    group by 1, 2, 3
),

first_months as (
    select
        customer_id,
        min(month_index) as first_index,
        min(order_yyyymm) as cohort_month
    from customer_months
    group by customer_id
),

final as (
    select
        c.team as team,
        fm.cohort_month as cohort_month,
        cm.month_index - fm.first_index as months_since,
        count(*) as customers
    from customer_months as cm
    join first_months as fm on fm.customer_id = cm.customer_id
    left join mapped_customers as c on c.customer_id = cm.customer_id
    group by c.team, fm.cohort_month, cm.month_index - fm.first_index
)

select * from final
order by team, cohort_month, months_since
