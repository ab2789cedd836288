/** One screen of the console: built once, refreshed by the poll, disposed when left. */
export interface View {
  readonly root: HTMLElement;
  refresh(): Promise<void>;
  dispose(): void;
}
