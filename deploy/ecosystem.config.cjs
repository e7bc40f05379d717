// pm2: `pm2 start deploy/ecosystem.config.cjs` from the repository root after `npm ci && npm run build`.
// pm2 would send SIGINT (the plugin's short development drain): kill_signal asks for SIGTERM's drain instead, where
// live calls get SHUTDOWN_GRACE_MS (30 s by default) to finish; kill_timeout outlasts it.
module.exports = {
  apps: [
    {
      name: 'talkdesk-ccai-gateway',
      script: 'dist/plugin/main.js',
      instances: 1,
      exec_mode: 'fork',
      kill_signal: 'SIGTERM',
      kill_timeout: 45000,
      env: {
        APP_CONFIG: '/etc/talkdesk-ccai-gateway/jambonz-app.json',
        BOTS_FILE: '/etc/talkdesk-ccai-gateway/bots.json',
      },
    },
  ],
};
