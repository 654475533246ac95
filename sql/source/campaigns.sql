-- campaigns: Marketing campaigns (optional): one row per campaign. Delete this file (and
--   touches.sql) when the company records no campaigns: the campaign KPIs are then null.
--   This file is one SELECT in the source database's dialect (DuckDB SQL for a folder of
--   exports), without bind parameters. It may join, filter, convert units (cost in
--   cents: divide by 100.0) and recode values (channel); it must return exactly these
--   columns, with these names (any order). Every KPI query and data check reads it as
--   mapped_campaigns; edit this file, never those.
-- columns:
--   campaign_id id: the campaign's key (integer or text, unique); touches refer to it
--   name text: the campaign's name
--   channel text: 'sms', 'email', 'wechat', 'call' or 'event'
--   cost money: what the campaign cost, in the reporting currency
--   started_at timestamp: when it started (local time)
-- notes: Identity mapping of the demo schema (table campaigns).
select
    m.campaign_id as campaign_id,
    m.name as name,
    m.channel as channel,
    m.cost as cost,
    m.started_at as started_at
from campaigns as m
