-- revenue_by_team_year: Customers, paid orders and net revenue per team and calendar year,
--   up to :as_of. Used by `demo` and `status` to summarise what a database holds.
-- params:
--   as_of date: the business date T (inclusive)
-- columns:
--   team text: the customer's team (NULL when the customer has none)
--   order_year int: calendar year of the order date
--   customers int: distinct customers with a paid order that year
--   orders int: paid orders
--   revenue money: paid minus refunded amounts
-- notes: The year is taken with EXTRACT, which SQLite lacks:
--   revenue_by_team_year.sqlite.sql uses strftime instead.
select
    c.team as team,
    extract(year from o.order_date) as order_year,
    count(distinct case when o.status = 'paid' then o.customer_id end) as customers,
    sum(case when o.status = 'paid' then 1 else 0 end) as orders,
    sum(case when o.status = 'paid' then o.amount else -o.amount end) as revenue
from mapped_orders as o
join mapped_customers as c on c.customer_id = o.customer_id
where o.status in ('paid', 'refunded')
  and o.order_date <= :as_of
group by c.team, extract(year from o.order_date)
order by c.team, order_year
