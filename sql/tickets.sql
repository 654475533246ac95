-- tickets: Service tickets that matter to the period: opened in it, or still open at its
--   start. One row per ticket (tickets are few next to orders).
-- params:
--   period_start_at timestamp: midnight starting the period's first day (inclusive)
--   period_end_at timestamp: midnight after the period's last day (exclusive)
-- columns:
--   ticket_id id: the ticket's key
--   customer_id id: the customer who raised it
--   opened_at timestamp: when it was opened
--   resolved_at timestamp: when it was resolved (NULL while open)
--   kind text: 'complaint' or 'inquiry'
--   satisfaction int: the customer's rating 1..5 (NULL when not rated)
select
    t.ticket_id as ticket_id,
    t.customer_id as customer_id,
    t.opened_at as opened_at,
    t.resolved_at as resolved_at,
    t.kind as kind,
    t.satisfaction as satisfaction
from mapped_tickets as t
where t.opened_at < :period_end_at
  and (t.resolved_at is null or t.resolved_at >= :period_start_at)
order by t.ticket_id
