-- leads: Sales leads (optional): one row per lead. Delete this file when the company
--   keeps no lead register: the conversion KPIs are then null ("no leads mapped").
--   This file is one SELECT in the source database's dialect (DuckDB SQL for a folder of
--   exports), without bind parameters. It may join, filter, convert units and recode
--   values; it must return exactly these columns, with these names (any order). Every
--   KPI query and data check reads it as mapped_leads; edit this file, never those.
-- columns:
--   lead_id id: the lead's key (integer or text, unique)
--   created_at timestamp: when the lead was registered (local time)
--   source text: where the lead came from
--   team text: the team that works the lead
--   customer_id id: the customer_id in customers.sql once converted, else NULL
-- notes: Identity mapping of the demo schema (table leads).
select
    l.lead_id as lead_id,
    l.created_at as created_at,
    l.source as source,
    l.team as team,
    l.customer_id as customer_id
from leads as l
