-- tickets: Service tickets (optional): one row per complaint or inquiry. Delete this file
--   when the company keeps no ticket register: the service KPIs are then null.
--   This file is one SELECT in the source database's dialect (DuckDB SQL for a folder of
--   exports), without bind parameters. It may join, filter, convert units and recode
--   values (kind: CASE ... THEN 'complaint'); it must return exactly these columns, with
--   these names (any order). Every KPI query and data check reads it as mapped_tickets;
--   edit this file, never those.
-- columns:
--   ticket_id id: the ticket's key (integer or text, unique)
--   customer_id id: the customer_id in customers.sql
--   opened_at timestamp: when the ticket was opened (local time)
--   resolved_at timestamp: when it was resolved, NULL while open
--   kind text: 'complaint' or 'inquiry' (anything else is not a complaint)
--   satisfaction int: the customer's rating 1..5, NULL when not rated
-- notes: Identity mapping of the demo schema (table tickets).
select
    t.ticket_id as ticket_id,
    t.customer_id as customer_id,
    t.opened_at as opened_at,
    t.resolved_at as resolved_at,
    t.kind as kind,
    t.satisfaction as satisfaction
from tickets as t
