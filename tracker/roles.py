"""The names the database defines, for Python that lists or loops over them:
app.staff_role (one NOLOGIN group role each) and app.sample_state."""

ROLES = ["buyer", "senior_buyer", "designer", "sales_lead", "sales_executive", "qc", "factory_liaison",
         "logistics", "finance", "ops_director", "md", "system_admin"]
STATES = ["requested", "ordered", "received", "with-design", "with-sales", "at-factory", "returned",
          "cut-for-production"]
