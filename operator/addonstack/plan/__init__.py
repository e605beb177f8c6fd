"""The pure planner: validate -> resolve -> plan. Imports no cluster client and no kopf."""
