"""The function app the Functions host indexes: the one app object, assembled from blueprints."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from activities.sync import bp as activities
from orchestrators.starters import bp as starters
from orchestrators.sync import bp as orchestrators
from shared import logredact

logredact.install()  # before the host's handlers see a record: no token or secret reaches Application Insights

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(orchestrators)
app.register_functions(activities)
app.register_functions(starters)
