// The browser test's page loads this bundle: Segment's own SDK, exactly as a site
// installs it from npm, exposed for the page's inline script.
import { AnalyticsBrowser } from '@segment/analytics-next'

window.AnalyticsBrowser = AnalyticsBrowser
