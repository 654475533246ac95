-- orders: Orders and refunds (required): one row per order, refund or cancellation.
--   This file is one SELECT in the source database's dialect (DuckDB SQL for a folder of
--   exports), without bind parameters. It may join, filter, aggregate (order lines or
--   line items into one row per order: group by the order and sum the line amounts),
--   convert units (amounts in cents: divide by 100.0; timestamps: cast to date) and
--   recode statuses (CASE ... WHEN your code THEN 'paid' ...); it must return exactly
--   these columns, with these names (any order). Every KPI query and data check reads
--   it as mapped_orders; edit this file, never those.
-- columns:
--   order_id id: the order's key (integer or text, unique)
--   customer_id id: the buyer's customer_id in customers.sql
--   order_date date: the business date of the order or refund (a date, not a timestamp)
--   amount money: the amount, positive, in the reporting currency
--   status text: 'paid' (a sale), 'refunded' (money returned) or 'cancelled' (ignored)
--   channel text: sales channel (store, online, ...)
--   category text: product category
-- notes: A 'refunded' row is money returned on its order_date: it reduces revenue and is
--   not an order; any status other than the three is reported by the data checks and
--   ignored. If refunds live in their own table, UNION ALL them in with status
--   'refunded'. This file: the identity mapping of the demo schema (table orders).
select
    o.order_id as order_id,
    o.customer_id as customer_id,
    o.order_date as order_date,
    o.amount as amount,
    o.status as status,
    o.channel as channel,
    o.category as category
from orders as o
