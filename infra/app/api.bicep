// The function app on a Flex Consumption (FC1) plan. It runs as the user-assigned identity for everything: pulling
// its package, AzureWebJobsStorage (blob/queue/table for the host and Durable), App Insights ingestion, Key Vault and
// the data lake. App settings are assembled here, in one place, from the product settings main.bicep passes in.
param name string
param planName string
param location string
param tags object = {}

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

@description('Host storage account (AzureWebJobsStorage, Durable task hub, deployment package).')
param hostStorageName string
param deploymentContainerName string

@description('App Insights connection string (instrumentation key + endpoints; not a credential with local auth off).')
param appInsightsConnectionString string

@allowed(['3.11'])
param pythonVersion string = '3.11'

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Product settings (names from shared.config.SETTINGS); empty values are left unset so defaults apply.')
param productSettings object

var storageSuffix = environment().suffixes.storage
var hostBlobEndpoint = 'https://${hostStorageName}.blob.${storageSuffix}'

// Identity-based AzureWebJobsStorage: the three service URIs (Durable needs queues and tables, and URIs work in
// sovereign clouds where __accountName does not), credential + clientId (Durable does not accept a resource id).
var platformSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: hostBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: 'https://${hostStorageName}.queue.${storageSuffix}'
  AzureWebJobsStorage__tableServiceUri: 'https://${hostStorageName}.table.${storageSuffix}'
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  AZURE_CLIENT_ID: identityClientId
}

var setProductSettings = toObject(
  filter(items(productSettings), setting => !empty(setting.value)),
  setting => setting.key,
  setting => setting.value
)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      alwaysOn: false
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostBlobEndpoint}/${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        // Durable on Flex: keep one instance of the durable trigger group warm so orchestrations are picked up
        // without waiting for a cold scale-out.
        alwaysReady: [
          {
            name: 'durable'
            instanceCount: 1
          }
        ]
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// Platform settings are merged last so a product setting can never override the storage/telemetry identity wiring.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union(setProductSettings, platformSettings)
}

// Publishing with basic (username/password) credentials is off for both FTP and SCM; azd and Core Tools deploy
// with Entra tokens.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output defaultUrl string = 'https://${functionApp.properties.defaultHostName}'
