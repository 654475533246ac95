-- touches_unknown_customer: Campaign touches whose customer_id is NULL or in no customers
--   row.
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   touch_id id: the touch's key
--   campaign_id id: the campaign it belongs to
--   customer_id id: the customer it names
--   sent_at timestamp: when it was sent
with failing as (
    select
        t.touch_id as touch_id,
        t.campaign_id as campaign_id,
        t.customer_id as customer_id,
        t.sent_at as sent_at
    from mapped_touches as t
    where t.customer_id is null
    union all
    select
        t.touch_id as touch_id,
        t.campaign_id as campaign_id,
        t.customer_id as customer_id,
        t.sent_at as sent_at
    from mapped_touches as t
    where t.customer_id is not null
      and not exists (
          select 1 from mapped_customers as c where c.customer_id = t.customer_id
      )
),

ranked as (
    select
        count(*) over () as failing_rows,
        row_number() over (order by touch_id, sent_at) as sample_rank,
        touch_id,
        campaign_id,
        customer_id,
        sent_at
    from failing
)

select failing_rows, touch_id, campaign_id, customer_id, sent_at
from ranked
where sample_rank <= :sample_rows
order by sample_rank
