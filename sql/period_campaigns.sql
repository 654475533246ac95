-- period_campaigns: Campaigns with a touch sent in the period or started in it, with their
--   touch counts, so that a campaign's cost can be booked to periods by touch share.
-- params:
--   period_start_at timestamp: midnight starting the period's first day (inclusive)
--   period_end_at timestamp: midnight after the period's last day (exclusive)
--   as_of_end_at timestamp: midnight after the business date T; later touches are not seen
-- columns:
--   campaign_id id: the campaign's key
--   campaign_name text: its name
--   channel text: sms, email, wechat, call or event
--   cost money: the campaign's whole cost
--   started_at timestamp: when it started
--   touches_total int: touches sent up to T (all periods; control touches are not sent)
--   touches_in_period int: touches sent in the period
with touch_counts as (
    select
        t.campaign_id as campaign_id,
        count(*) as touches_total,
        sum(case when t.sent_at >= :period_start_at and t.sent_at < :period_end_at
            then 1 else 0 end) as touches_in_period
    from mapped_touches as t
    where t.sent_at < :as_of_end_at
      and not t.is_control
    group by t.campaign_id
),

final as (
    select
        c.campaign_id as campaign_id,
        c.name as campaign_name,
        c.channel as channel,
        c.cost as cost,
        c.started_at as started_at,
        coalesce(tc.touches_total, 0) as touches_total,
        coalesce(tc.touches_in_period, 0) as touches_in_period
    from mapped_campaigns as c
    left join touch_counts as tc on tc.campaign_id = c.campaign_id
    where tc.touches_in_period > 0
       or (c.started_at >= :period_start_at and c.started_at < :period_end_at)
)

select * from final
order by campaign_id
