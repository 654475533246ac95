-- customer_referrals: Referrals per referring customer as of :as_of ("old customer brings
--   new customer"). A referral is a customer signed up on or before T whose referred_by
--   names the referrer; it is successful when the referee has a paid order on or before T
--   (refunds do not undo it). Only customers who referred someone appear.
-- params:
--   as_of date: the business date T (inclusive)
-- columns:
--   customer_id id: the referring customer's key
--   referrals_made int: customers signed up on or before T who name this customer in referred_by
--   referrals_successful int: of those, referees with a paid order on or before T
-- adapt: Map the customer master as in customers.sql and orders as in customer_facts.sql;
--   keep referred_by pointing at the referrer's customer_id.
with referees as (
    select
        c.customer_id as customer_id,
        c.referred_by as referred_by
    from customers as c
    where c.referred_by is not null
      and c.signup_date <= :as_of
),

buyers as (
    select distinct o.customer_id as customer_id
    from orders as o
    where o.status = 'paid'
      and o.order_date <= :as_of
),

final as (
    select
        r.referred_by as customer_id,
        count(*) as referrals_made,
        count(b.customer_id) as referrals_successful
    from referees as r
    left join buyers as b on b.customer_id = r.customer_id
    group by r.referred_by
)

select * from final
order by customer_id
