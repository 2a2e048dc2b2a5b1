export * from 'duplex-ws/ws';
export { default } from 'duplex-ws/ws';
