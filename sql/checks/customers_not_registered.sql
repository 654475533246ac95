-- customers_not_registered: Not a check: the customer ids with a customers row that is
--   not in the register of :as_of (signed up after it, or without a signup date). The
--   revenue reconciliation (crm_batch.app.reconciliation) tells its unregistered_customer
--   bucket (such ids, unless another of their rows is in the register) from
--   unknown_customer (ids in no customers row) with them.
-- params:
--   as_of date: the business date T (inclusive)
-- columns:
--   customer_id id: the customer's key
select c.customer_id as customer_id
from mapped_customers as c
where c.customer_id is not null
  and (c.signup_date is null or c.signup_date > :as_of)
