// Logs and traces of the sync runs. Local (instrumentation-key) ingestion is disabled, so only callers holding an
// Entra token with Monitoring Metrics Publisher on this component (the app's identity) can write telemetry.
param logAnalyticsName string
param appInsightsName string
param location string
param tags object = {}

@description('Principal id of the function app identity (gets Monitoring Metrics Publisher on the component).')
param appPrincipalId string

@minValue(30)
@maxValue(730)
param retentionInDays int = 30

var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

resource appInsightsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output appInsightsName string = appInsights.name
// The connection string carries only the (public) instrumentation key and ingestion endpoint; with local auth
// disabled it cannot be used to write telemetry without an Entra token.
output connectionString string = appInsights.properties.ConnectionString
output logAnalyticsName string = logAnalytics.name
