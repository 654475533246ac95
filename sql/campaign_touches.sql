-- campaign_touches: Touches sent from the period's start up to the end of the attribution
--   window (the period's end + attribution days, at most T). Touches sent in the period
--   are the campaign funnel; the later ones only decide last-touch attribution of orders
--   near the period's end.
-- params:
--   period_start_at timestamp: midnight starting the period's first day (inclusive)
--   attribution_end_at timestamp: midnight after the attribution window's last day
-- columns:
--   touch_id id: the touch's key
--   campaign_id id: the campaign it belongs to
--   customer_id id: the customer touched
--   sent_at timestamp: when it was sent
--   opened bool: the customer opened it
--   clicked bool: the customer clicked through
--   opted_out bool: the customer opted out of marketing in response
--   is_control bool: held out as the campaign's control group (selected, not sent)
select
    t.touch_id as touch_id,
    t.campaign_id as campaign_id,
    t.customer_id as customer_id,
    t.sent_at as sent_at,
    t.opened as opened,
    t.clicked as clicked,
    t.opted_out as opted_out,
    t.is_control as is_control
from mapped_touches as t
where t.sent_at >= :period_start_at
  and t.sent_at < :attribution_end_at
order by t.touch_id
