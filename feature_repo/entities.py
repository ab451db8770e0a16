"""The business objects features describe."""

from pitstop import Entity

driver = Entity("driver", join_keys=["driver_id"], description="A driver on the platform")
customer = Entity("customer", join_keys=["customer_id"], description="A rider")
