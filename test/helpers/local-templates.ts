// The local images built from Debian's packages stand in for the public ones here.
export const LOCAL_TAGS = {
  redis: {
    tag: 'bookworm',
    commit_message: 'local image for the test site',
    pod_definition: {
      image: 'pods-test/redis:bookworm',
      environment_variables: { REDIS_PASSWORD: '{{user_password}}' },
      networking: { default: { protocol: 'tcp', port: 6379 }, plain: { protocol: 'tcp', port: 6379, dedicated_port: true } },
      resources: { cpu_request: 250, cpu_limit: 1000, mem_request: 128, mem_limit: 512 },
    },
  },
  postgres: {
    tag: 'bookworm',
    commit_message: 'local image for the test site',
    pod_definition: {
      image: 'pods-test/postgres:bookworm',
      environment_variables: { POSTGRES_USER: '{{user_username}}', POSTGRES_PASSWORD: '{{user_password}}', POSTGRES_DB: '{{pod_id}}' },
      networking: { default: { protocol: 'postgres', port: 5432 } },
      resources: { cpu_request: 250, cpu_limit: 1000, mem_request: 256, mem_limit: 1024 },
      readiness: { exec: ['pg_isready', '-h', '127.0.0.1', '-p', '5432'] },
    },
  },
};
