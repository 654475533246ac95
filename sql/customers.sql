-- customers: The customer register: one row per customer signed up on or before :as_of.
--   Names, phones and e-mails are untrusted text; they are escaped at every output.
-- params:
--   as_of date: the business date T (inclusive)
-- columns:
--   customer_id id: the customer's key (integer or text)
--   name text: display name (may be empty)
--   team text: the sales/service team that owns the customer
--   owner text: the account owner (sales rep)
--   region text: sales region
--   acquisition_channel text: where the customer came from
--   signup_date date: registration date
--   birthday date: date of birth, NULL when unknown
--   referred_by id: the referring customer's key, NULL when not referred
--   phone text: phone number
--   email text: e-mail address
--   marketing_opt_out bool: true when the customer refused marketing
-- notes: A customer without a team gets team NULL and shows up under "(no team)".
select
    c.customer_id as customer_id,
    c.name as name,
    c.team as team,
    c.owner as owner,
    c.region as region,
    c.acquisition_channel as acquisition_channel,
    c.signup_date as signup_date,
    c.birthday as birthday,
    c.referred_by as referred_by,
    c.phone as phone,
    c.email as email,
    c.marketing_opt_out as marketing_opt_out
from mapped_customers as c
where c.signup_date <= :as_of
order by c.customer_id
