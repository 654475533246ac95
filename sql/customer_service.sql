-- customer_service: Open tickets per customer at the end of :as_of, for the churn warning.
--   A ticket is open at the end of T when it was opened before midnight after T and is not
--   resolved by then (resolved_at NULL or later), so a past date gives the same answer
--   tomorrow. A complaint is "open over the limit" when it has been open longer than the
--   complaint_open_hours setting at the end of T: opened before :complaint_cutoff_at.
--   Only customers with at least one open ticket appear.
-- params:
--   as_of_end_at timestamp: midnight after T; a ticket opened before it exists on T
--   complaint_cutoff_at timestamp: as_of_end_at minus complaint_open_hours (default 24 h)
-- columns:
--   customer_id id: the customer's key
--   tickets_open int: tickets of any kind open at the end of T
--   complaints_open int: complaints open at the end of T
--   complaints_open_over_limit int: complaints open at the end of T and opened before the cutoff
--   oldest_open_complaint_at timestamp: when the oldest open complaint was opened (NULL if none)
-- notes: Only kind 'complaint' counts as a complaint (tickets.sql recodes the company's
--   kinds). Timestamps are local time, like every *_at column.
with ticket_lines as (
    select
        t.customer_id as customer_id,
        t.opened_at as opened_at,
        case when t.kind = 'complaint' then 1 else 0 end as is_complaint
    from mapped_tickets as t
    where t.opened_at < :as_of_end_at
      and (t.resolved_at is null or t.resolved_at >= :as_of_end_at)
),

final as (
    select
        customer_id,
        count(*) as tickets_open,
        sum(is_complaint) as complaints_open,
        sum(case when is_complaint = 1 and opened_at < :complaint_cutoff_at then 1 else 0 end)
            as complaints_open_over_limit,
        min(case when is_complaint = 1 then opened_at end) as oldest_open_complaint_at
    from ticket_lines
    group by customer_id
)

select * from final
order by customer_id
