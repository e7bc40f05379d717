// pm2: `pm2 start deploy/ecosystem.config.cjs` from the repository root after `npm ci && npm run build`.
// pm2 sends SIGINT on stop/restart: the plugin ends live calls cleanly (stop{error} + BYE) before exiting.
module.exports = {
  apps: [
    {
      name: 'talkdesk-ccai-gateway',
      script: 'dist/plugin/main.js',
      instances: 1,
      exec_mode: 'fork',
      kill_timeout: 30000,
      env: {
        APP_CONFIG: '/etc/talkdesk-ccai-gateway/jambonz-app.json',
        BOTS_FILE: '/etc/talkdesk-ccai-gateway/bots.json',
      },
    },
  ],
};
